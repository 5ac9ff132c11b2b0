from negtrain_core.stub import not_implemented

not_implemented("hits", 4)

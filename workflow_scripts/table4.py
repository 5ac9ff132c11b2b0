from negtrain_core.stub import not_implemented

not_implemented("table4", 6)

from negtrain_core.stub import not_implemented

not_implemented("preprocess", 2)

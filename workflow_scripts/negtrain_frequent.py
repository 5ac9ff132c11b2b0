from negtrain_core.stub import not_implemented

not_implemented("negtrain_frequent", 6)

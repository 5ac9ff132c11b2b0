from negtrain_core.stub import not_implemented

not_implemented("train_unlikelihood", 6)

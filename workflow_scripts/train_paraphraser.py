from negtrain_core.stub import not_implemented

not_implemented("train_paraphraser", 5)

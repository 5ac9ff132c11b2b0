from negtrain_core.stub import not_implemented

not_implemented("augment_targets", 5)

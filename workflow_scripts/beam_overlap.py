from negtrain_core.stub import not_implemented

not_implemented("beam_overlap", 5)

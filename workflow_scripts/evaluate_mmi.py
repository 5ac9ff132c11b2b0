from negtrain_core.stub import not_implemented

not_implemented("evaluate_mmi", 6)

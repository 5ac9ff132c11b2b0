from negtrain_core.stub import not_implemented

not_implemented("malicious_lists", 5)

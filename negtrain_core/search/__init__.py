"""Stage 3, trigger search (rules/search.smk, rules/paraphrase.smk): gibbs-enum, the hit criteria, the malicious
target lists and the paraphraser that augments them."""

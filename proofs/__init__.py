"""palloc.proofs: the Z3 proof suite. Only the smt layer imports z3.

Layers, as in Alive2:
  semantics   the Python model (palloc.model), which the encodings are tied to by
              tests/proofs/test_ties.py
  smt         smt.py (obligations, verdicts, the solver) and smt_encode.py (encodings of the
              model's functions, named after them)
  theorems    thm_packing.py (1), thm_merge.py (2), thm_no_double_alloc.py (3),
              thm_addresses.py (4): each a list of named obligations with broken variants
  tools       runner.py (planning, shared runs, process pool, manifest), manifest.toml
              (expected verdicts and budgets), contracts.py (CrossHair contracts), and the
              `palloc prove` / `palloc contracts` verbs
"""

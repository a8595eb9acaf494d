"""palloc.proofs: the Z3 proof suite. Only the smt layer imports z3."""

"""Region proposals outside a detector: recall measurement of any proposal source
(selective search, engines/selective_search.py, or an RPN) against ground truth, and the
`detstream proposals` commands (recall; cache, engines/training/proposal_cache.py)."""

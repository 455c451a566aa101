"""Region proposals outside a detector: selective search, and recall measurement of any
proposal source (selective search or an RPN) against ground truth."""

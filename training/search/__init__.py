"""Architecture search (AutoDisenSeq Section 4.2): space sampling, supernet, evolution."""

"""Pure stages of the recommend pipeline: no I/O, no clocks besides the deadline helper."""

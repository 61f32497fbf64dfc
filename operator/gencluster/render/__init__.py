"""Pure renderers: from a parsed spec to the desired child objects, as plain dicts.

No I/O and no clocks here; anything observed (the current replica count, existing secrets) is
passed in. The reconcile handler adopts and applies what these return.
"""

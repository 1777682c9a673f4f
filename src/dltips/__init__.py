"""dltips."""

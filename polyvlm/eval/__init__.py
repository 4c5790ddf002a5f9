"""polyvlm.eval"""

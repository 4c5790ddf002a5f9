"""polyvlm.polyvlm"""

"""polyvlm.serve"""

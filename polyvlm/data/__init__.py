"""polyvlm.data"""

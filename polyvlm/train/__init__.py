"""polyvlm.train"""

"""stun"""

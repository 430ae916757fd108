"""ppsp"""

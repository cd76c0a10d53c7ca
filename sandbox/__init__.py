"""Running untrusted code: no Django, split by concern."""

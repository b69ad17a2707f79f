# Only on the router's PYTHONPATH: see __init__.py.
raise ImportError("bjdata is not used by the buildbot-mq-ordered router")

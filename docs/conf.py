project = 'buildbot-mq-ordered'
author = 'buildbot-mq-ordered contributors'
copyright = '2026, ' + author
extensions = []
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
highlight_language = 'python'

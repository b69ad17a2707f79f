import pathlib
import re

project = 'buildbot-mq-ordered'
author = 'buildbot-mq-ordered contributors'
copyright = '2026, ' + author
# the one version, read as setup.py reads it
release = version = re.search(
    r"^__version__ = '([^']+)'$",
    (pathlib.Path(__file__).parent.parent / 'buildbot_mq_ordered' / '__init__.py')
    .read_text(encoding='utf-8'), re.M).group(1)
extensions = []
master_doc = 'index'
exclude_patterns = ['_build']
html_theme = 'alabaster'
highlight_language = 'python'

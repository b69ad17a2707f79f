import sys

from buildbot_mq_ordered.cli import main

sys.exit(main())

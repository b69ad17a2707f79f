from setuptools import find_packages, setup

setup(
    name='buildbot-mq-ordered',
    version='0.1.0',
    description="Totally ordered, lossless multi-master MQ for Buildbot over a Crossbar router",
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    license='GPL-2.0-only',
    packages=find_packages(include=['buildbot_mq_ordered', 'buildbot_mq_ordered.*']),
    package_data={'buildbot_mq_ordered.master': ['dashboard.html']},
    python_requires='>=3.9',
    install_requires=[
        'buildbot>=4.0',
        'twisted',
        'txaio',
        'autobahn',
        'msgpack',
    ],
    extras_require={
        # psycopg: a PostgreSQL journal; prometheus-client: --metrics-port
        'router': ['crossbar', 'psycopg[binary]', 'prometheus-client'],
        # the cluster's page in Buildbot's web UI (webdashboard.py)
        'dashboard': ['buildbot-wsgi-dashboards'],
        'bench': ['psutil', 'matplotlib'],
        'test': [
            'crossbar',
            'prometheus-client',
            'buildbot-wsgi-dashboards',
            # the dashboard's test drives Debian's chromium (tests/browser.sh)
            'selenium',
            'buildbot-worker',
            'buildbot-www',
            'psycopg2-binary',    # the masters' database in tests/integration/test_cluster_e2e.py
            'psycopg[binary]',    # the routers' PostgreSQL journal
            'pytest',
            'pytest-twisted',
            'hypothesis',
            'psutil',
            'matplotlib',
            'sphinx',
            # what Buildbot's own integration tests import (tests/support/buildbot_suite.py)
            'parameterized',
            'evalidate',
            'zstandard',
            'lz4',
            'treq',
            'txrequests',
            'pypugjs',
            'markdown',
            'hvac',
        ],
    },
    entry_points={
        'console_scripts': ['buildbot-mq-ordered = buildbot_mq_ordered.cli:main'],
    },
)

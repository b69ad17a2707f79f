"""The built sdist and wheel hold what a user needs: the version of
buildbot_mq_ordered/__init__.py, valid trove classifiers, and in the wheel
every file of the package in git (dashboard.html included) and nothing of
the tests. Run by .ci/release-check from the clone: check_dist.py WHEEL SDIST"""

import email
import re
import subprocess
import sys
import tarfile
import zipfile

from trove_classifiers import classifiers as KNOWN


def version():
    with open('buildbot_mq_ordered/__init__.py', encoding='utf-8') as f:
        return re.search(r"^__version__ = '([^']+)'$", f.read(), re.M).group(1)


def metadata(wheel):
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
        return email.message_from_bytes(z.read(name)), z.namelist()


def main(wheel, sdist):
    problems = []
    meta, names = metadata(wheel)
    if meta['Version'] != version():
        problems.append(f"wheel version {meta['Version']}, __init__.py {version()}")
    if f"-{version()}.tar.gz" not in sdist:
        problems.append(f"sdist {sdist} is not version {version()}")
    problems += [f"not a trove classifier: {c!r}" for c in meta.get_all('Classifier', [])
                 if c not in KNOWN]
    tracked = subprocess.run(['git', 'ls-files', 'buildbot_mq_ordered'], check=True,
                             capture_output=True, text=True).stdout.split()
    problems += [f"missing from the wheel: {p}" for p in sorted(set(tracked) - set(names))]
    problems += [f"in the wheel, not in the package: {n}" for n in names
                 if not n.startswith(('buildbot_mq_ordered/', 'buildbot_mq_ordered-'))]
    with tarfile.open(sdist) as t:
        members = {m.split('/', 1)[1] for m in t.getnames() if '/' in m}
    problems += [f"missing from the sdist: {p}" for p in
                 ('README.md', 'LICENSE', 'CHANGELOG.rst', 'setup.py', 'pyproject.toml')
                 if p not in members]
    for p in problems:
        print('check_dist:', p)
    if problems:
        sys.exit(1)
    print(f"check_dist: {wheel.rsplit('/', 1)[-1]}: version {version()}, "
          f"{len(names)} files ({len(tracked)} of the package), classifiers valid")


if __name__ == '__main__':
    main(*sys.argv[1:])

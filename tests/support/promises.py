"""A fault test's promises, checked all before it fails: the failure then
lists every promise broken, each with its figure and its bound."""


class Promises:
    """Owns the sentences of the promises broken so far."""

    def __init__(self):
        self.broken = []

    def check(self, kept, sentence):
        if not kept:
            self.broken.append(sentence)

    def within(self, name, seconds, bound):
        """``seconds`` (None: never happened) at most ``bound``."""
        if seconds is None:
            self.broken.append(f"{name}: never, bound {bound:.1f} s")
        elif seconds > bound:
            self.broken.append(f"{name} took {seconds:.1f} s, bound {bound:.1f} s")

    def assert_kept(self, testcase):
        if self.broken:
            testcase.fail("promises broken:\n- " + "\n- ".join(self.broken))

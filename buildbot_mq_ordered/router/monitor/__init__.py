"""The router's monitor: a component beside the sequencer (``component``),
what it concludes (``clusterview``, pure), Prometheus metrics (``metrics``)
and their HTTP side (``web``)."""

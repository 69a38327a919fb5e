"""One module per timer mechanism; each owns its rule once and cites its source.

The event simulator (:mod:`kalab.simulate`) calls these decision functions;
the closed forms beside them (numpy, broadcasting) serve sweeps and tables and
are checked against the simulator by property tests.
"""

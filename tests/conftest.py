import os

from hypothesis import settings

# CI runs more examples; a user's `make test` stays quick.
settings.register_profile("ci", max_examples=60, deadline=None)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.register_profile("heavy", max_examples=500, deadline=None)  # on demand: --hypothesis-profile=heavy
settings.load_profile("ci" if os.environ.get("CI") else "dev")

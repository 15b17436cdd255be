"""The scenario simulator's parts; ``streams.tools.simulate`` puts them together.

``model``: the scenario constants, configuration and records; ``plan``: when and where the
incidents happen; ``context``: what the department generators share, with ``delivery``
(late, malformed and re-delivered records); ``sensors``, ``complaints`` and ``market``: one
generator per department."""

"""Guided recording protocols: named steps of gesture prompts, defined as data.

`protocols` parses and checks protocol definitions (the JSON files in `files/` and
the ones users create in the portal); `poses` gives each gesture a target hand for
the recording page's 3D prompt. Pure Python: no Django.
"""

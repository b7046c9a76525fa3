"""The demonstration federation (``make run``, ``shomei demo DIR``), outside the RA and the CA.

It drives both through their public functions, as an operator and the offices would
(:mod:`demo.federation`); nothing in ``ra/`` or ``ca/`` imports it.
"""

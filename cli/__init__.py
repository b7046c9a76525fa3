"""The ``shomei`` command: thin click commands over the service functions."""

"""Errors a user can fix. The CLI turns them into a one-line message and exit status 2."""


class InputError(ValueError):
    """Bad arguments or input data: the message says what is wrong and how to fix it."""

"""Errors a user can fix. The CLI turns them into a one-line message and exit status 2."""


class InputError(ValueError):
    """Bad arguments or input data: the message says what is wrong and how to fix it."""


class AnswerError(InputError):
    """A remote service answered HTTP 200 with something other than what was asked (a row without a
    field, another shape). Not the user's mistake, but like an InputError it ends the command with
    one line naming the answer (exit 2) instead of a traceback or silently wrong data; a rerun asks again."""

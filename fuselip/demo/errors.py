"""The one error the app shows its user: a message about their input or a missing model, phrased for them."""


class DemoError(ValueError):
    """A problem with the user's input or with a missing model, phrased for the user."""

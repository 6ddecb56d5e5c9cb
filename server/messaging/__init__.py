"""Messages sent by API call (eSputnik's ``message/{id}/smartsend`` and ``message/email``):
one stored row per recipient, sent by the workers through the delivery path workflows use
(``delivery``), refused by the suppression rules workflows use (``suppression``)."""

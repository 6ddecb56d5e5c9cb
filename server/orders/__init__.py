"""Orders (eSputnik's ``POST /api/v1/orders``) and the order events workflows start on.

An order arrives by the route, or as an event ``orderCreated`` / ``orderUpdated`` /
``orderDelivered`` / ``orderCancelled`` that carries it as params; either way it is
stored once, keyed by ``externalOrderId``, and an order that arrived by the route emits
the event its change calls for, through the acceptance pipeline.
"""

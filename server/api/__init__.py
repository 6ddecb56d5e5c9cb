"""The gRPC face of eventflow: servicers, conversions, the error/auth interceptor."""

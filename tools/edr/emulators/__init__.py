"""HTTP emulators of the EDR vendors' APIs (FastAPI apps wrapped in `FaultMiddleware`)."""

"""Sandbox twins of the external systems g2b-hub fetches credentials from.

Each twin speaks its real system's contract (VIES and the national certificates registry over SOAP
with a WSDL at ``?wsdl``; NTS, GLEIF, Companies House and IAF CertSearch over REST) over one seeded,
shared dataset, with configurable fault injection, so a connector is pointed at a twin by changing
only its endpoint and key.
"""

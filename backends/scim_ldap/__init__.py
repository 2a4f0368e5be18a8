"""The ``ldap`` storage backend of scim-service: users and groups in an LDAP directory (OpenLDAP, Active Directory)."""

"""The storefront's authentication logic for authsvc: its next-auth `callbacks` and
`events`, ported from its `authOptions` (see docs/customising.md).

`storefront_auth.app:create_storefront_app` is what `authsvc serve --app` (or
`AUTHSVC_APP`) runs.
"""

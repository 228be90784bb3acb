locals {
  env    = "plt"
  region = "ca-central-1"
}

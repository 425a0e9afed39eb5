/** What login, guest sign-in and refresh answer (timestamps in epoch ms). */
export interface TokenPair {
  uid: string;
  role: string;
  sid: string;
  accessToken: string;
  refreshToken: string;
  accessExpiresAt: number;
  refreshExpiresAt: number;
  /** Login and guest sign-in: the server-issued device id to send with the next login from this device. */
  deviceId?: string;
}

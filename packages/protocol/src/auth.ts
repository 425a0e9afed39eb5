/** What login, guest sign-in and refresh answer (timestamps in epoch ms). */
export interface TokenPair {
  uid: string;
  role: string;
  sid: string;
  accessToken: string;
  refreshToken: string;
  accessExpiresAt: number;
  refreshExpiresAt: number;
}

/**
 * What a client may know of an app's actors, as types only: the server derives it from the actors' own definitions
 * (`GreenroomApp<typeof actors>` in @greenroom/server) and the client takes it as a type parameter
 * (`createClient<App>(…)`), so no server code ever reaches a browser bundle.
 */

/** Who may send a message or subscribe: every authenticated caller, or callers with one of these roles. */
export type RoleRuleType = 'any' | readonly string[];

/** One message a client may send: its payload as sent, its result as answered, and who may send it. */
export interface MessageTypes {
  readonly payload: unknown;
  readonly result: unknown;
  readonly allow: RoleRuleType;
}

/** One actor: the messages a client may send (internal ones are never listed), the events it pushes. */
export interface ActorTypes {
  readonly messages: { readonly [type: string]: MessageTypes };
  readonly events: { readonly [event: string]: unknown };
}

/** An app: actor name → its types. */
export type AppTypes = { readonly [actor: string]: ActorTypes };

/** The app a client knows nothing about: any actor, any message, any payload; results and events `unknown`. */
export interface UntypedApp {
  readonly [actor: string]: {
    readonly messages: { readonly [type: string]: { readonly payload: unknown; readonly result: unknown; readonly allow: 'any' } };
    readonly events: { readonly [event: string]: unknown };
  };
}

/** Whether a rule lets `Role` through (`string`: any role, so every message of the actor). */
export type Allows<Rule extends RoleRuleType, Role extends string> = string extends Role
  ? true
  : Rule extends 'any'
    ? true
    : Role extends Rule[number]
      ? true
      : false;

/** The messages of one actor that a caller with `Role` may send. */
export type MessagesFor<A extends ActorTypes, Role extends string> = {
  [T in keyof A['messages'] as Allows<A['messages'][T]['allow'], Role> extends true ? T : never]: A['messages'][T];
};

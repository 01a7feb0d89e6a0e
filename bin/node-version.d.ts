export declare const NEEDS: string
export declare function tooOld (version: string): boolean
